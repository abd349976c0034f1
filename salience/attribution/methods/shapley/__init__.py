"""The coalition family: TextGenSHAP, LIME and KernelSHAP over the prompt's players, sharing one coalition
runner, the Shapley estimators and the linear surrogate fit."""
