"""AttnLRP and the LRP rules it installs on a model for one call."""
