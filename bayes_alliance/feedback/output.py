"""Writing feedback: ``feedback.html`` (a self-contained page with the sentences, numbers
and plots), ``feedback.json`` (the summary of :func:`bayes_alliance.feedback.patient_feedback.patient_feedback`)
and, with the therapist profiles, ``profiles.csv``, atomically.

Feedback on a fit whose convergence check failed is refused unless asked for
(``allow_unconverged``, the command's ``--allow-unconverged``); then the page opens with a banner
saying so, and ``feedback.json`` records ``converged: false`` with the check's message."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_alliance.feedback.mechanism_feedback import (
    MechanismFeedback,
    mechanism_feedback,
    mechanism_plot,
)
from bayes_alliance.feedback.patient_feedback import (
    NOT_CONVERGED_SENTENCE,
    Feedback,
    FeedbackOptions,
    feedback_plot,
    fmt,
    patient_feedback,
    plain,
)
from bayes_alliance.feedback.profiles import caterpillar, therapist_profiles
from bayes_alliance.inference.fit import FitResult
from bayes_alliance.mechanisms.fit import MechanismResult

__all__ = ["feedback_html", "write_feedback"]


def feedback_html(
    fb: Feedback | MechanismFeedback | None,
    profiles: pd.DataFrame | None,
    pngs: dict[str, bytes],
    banner: str = "",
) -> str:
    """A small self-contained page: sentences, numbers, the plot, the profiles; ``banner``
    (a failed convergence check) opens it."""
    import base64

    from bayes_alliance.report.render import CSS

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style>"]
    title = (
        "Feedback"
        if fb is None
        else f"Feedback for patient {html.escape(str(fb.summary['patient']))}"
    )
    parts.append(f"<title>{title}</title></head><body><h1>{title}</h1>")
    if banner:
        parts.append(f"<div class='banner' role='alert'>{html.escape(banner)}</div>")

    def img(key: str, caption: str) -> None:
        if key in pngs:
            b64 = base64.b64encode(pngs[key]).decode()
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )

    if fb is not None:
        s = fb.summary
        parts.append("".join(f"<p>{html.escape(t)}</p>" for t in fb.sentences))
        rows = [
            ("trait", s["trait"]),
            ("percentile, all patients", s["trait_percentile"]["all_patients"]),
        ]
        if s["trait_percentile"]["caseload"] is not None:
            rows.append(("percentile, therapist's caseload", s["trait_percentile"]["caseload"]))
        rows.append((f"state deviation at session {s['latest_session']}", s["state_deviation"]))
        if s["state_trend"] is not None:
            rows.append(("state trend per session", s["state_trend"]))
        if s.get("change") is not None:
            rows.append(("own linear change per session", s["change"]))
        for part in s.get("other_series", {}).values():  # a mechanism fit's other series
            label = f"{part['label']} ({part['series']})"
            rows.append((f"{label}: trait", part["trait"]))
            rows.append((f"{label}: percentile", part["trait_percentile"]["all_patients"]))
            if part["state_deviation"] is not None:
                rows.append((f"{label}: state deviation", part["state_deviation"]))
            if part["state_trend"] is not None:
                rows.append((f"{label}: state trend per session", part["state_trend"]))
        parts.append(
            f"<table><caption>Posterior means and {html.escape(s['interval'])} intervals"
            "</caption><tr><th>quantity</th><th>mean</th><th>low</th><th>high</th></tr>"
        )
        for name, d in rows:
            parts.append(
                f"<tr><td>{html.escape(name)}</td><td>{d['mean']:.3f}</td>"
                f"<td>{d['ci_low']:.3f}</td><td>{d['ci_high']:.3f}</td></tr>"
            )
        parts.append("</table>")
        img("feedback", f"Observed {s['variable']}, latent trait band and states")
    if profiles is not None:
        parts.append("<h2>Therapist profiles</h2>")
        if profiles.attrs.get("note"):
            parts.append(f"<p>{html.escape(profiles.attrs['note'])}</p>")
        r = profiles.attrs.get("correlation")
        if r is not None:
            parts.append(
                "<p>Correlation of a therapist's state-effect deviation with their trait part "
                "(the model's therapist covariance, before the slopes' truncation to stationary "
                f"dynamics): {fmt(r)}.</p>"
            )
        parts.append(
            "<p>Each therapist's estimates are shrunk toward zero, more so with fewer "
            "patients (partial pooling): a therapist seen with few patients is drawn toward the "
            "average of all therapists.</p>"
        )
        img("profiles", "Therapist profiles (posterior means and intervals)")
    parts.append("</body></html>")
    return "".join(parts)


def write_feedback(
    result: FitResult | MechanismResult,
    out: str | Path,
    patient: object | None = None,
    new_sessions: pd.DataFrame | None = None,
    options: FeedbackOptions | None = None,
    profiles: bool = False,
    force: bool = False,
    random_seed: int | None = None,
    allow_unconverged: bool = False,
) -> Path:
    """Write ``out/feedback.html`` and ``out/feedback.json`` (and with ``profiles``
    ``out/profiles.csv``), atomically; returns the HTML path. The JSON holds the summary of
    :func:`patient_feedback` under its keys (patient, trait_percentile, state_deviation,
    state_trend, flags, patterns, converged, ...) and, with ``profiles``,
    ``therapist_profiles``. A mechanism fit's page comes from
    :func:`bayes_alliance.feedback.mechanism_feedback.mechanism_feedback` (no profiles).

    Raises
    ------
    ValueError
        The fit's convergence check failed and ``allow_unconverged`` is False (nothing is
        written); with it the page opens with a banner that says so.
    """
    from bayes_alliance.core.files import atomic_dir
    from bayes_alliance.report.render import fig_png

    if patient is None and not profiles:
        raise ValueError("name a patient, or ask for the therapist profiles")
    conv = result.convergence
    if not conv.ok and not allow_unconverged:
        raise ValueError(
            f"the fit's convergence check failed ({'; '.join(conv.problems)}), so feedback from "
            "it could mislead; refit as convergence.json advises, or pass --allow-unconverged "
            "(allow_unconverged=True) to write it anyway, marked as not converged"
        )
    banner = "" if conv.ok else f"{NOT_CONVERGED_SENTENCE} {conv.message()}"
    opt = options or FeedbackOptions()
    fb: Feedback | MechanismFeedback | None = None
    table = None
    pngs: dict[str, bytes] = {}
    if isinstance(result, MechanismResult):
        if profiles:
            raise ValueError(
                "therapist profiles are for main-model fits; a mechanism fit has no therapist "
                "random slopes to profile"
            )
        if patient is not None:
            fb = mechanism_feedback(result, patient, new_sessions, opt, random_seed=random_seed)
            pngs["feedback"] = fig_png(mechanism_plot(fb))
    else:
        if patient is not None:
            fb = patient_feedback(result, patient, new_sessions, opt, random_seed=random_seed)
            pngs["feedback"] = fig_png(feedback_plot(fb))
        table = therapist_profiles(result, opt.ci_prob) if profiles else None
    doc: dict[str, Any] = {} if fb is None else dict(fb.summary)
    doc |= {"converged": conv.ok, "convergence": conv.message()}
    if table is not None:
        assert isinstance(result, FitResult)
        pngs["profiles"] = fig_png(caterpillar(table, result.data.roles.predictor))
        doc["therapist_profiles"] = {
            "note": table.attrs["note"],
            "correlation": table.attrs["correlation"],
            "rows": json.loads(table.to_json(orient="records")),
        }
    with atomic_dir(out, force=force) as tmp:
        (tmp / "feedback.json").write_text(json.dumps(doc, indent=2, default=plain) + "\n")
        (tmp / "feedback.html").write_text(feedback_html(fb, table, pngs, banner))
        if table is not None:
            table.to_csv(tmp / "profiles.csv", index=False)
    return Path(out) / "feedback.html"
