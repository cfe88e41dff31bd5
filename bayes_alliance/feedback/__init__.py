"""Clinician feedback: one patient's update on new sessions without refitting, flags and the feedback page, therapist profiles."""
