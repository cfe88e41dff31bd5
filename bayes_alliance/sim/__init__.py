"""Simulators with known truth: session data of the joint model, the mechanism designs, planted state patterns."""
