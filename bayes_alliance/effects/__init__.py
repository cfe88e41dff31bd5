"""Derived effects as pure functions of posterior draws: R-squared components, standardised and long-run effects, ICCs, population within moments."""
