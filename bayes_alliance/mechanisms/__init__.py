"""The mechanism models (a mediator series, a second informant, an end-of-treatment outcome): spec, builder, effects and fit."""
