"""Model builders: the joint trait/state model as an unsampled ``pm.Model`` (priors, within-person part, likelihoods); nothing here samples."""
