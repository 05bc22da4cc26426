"""KFP pipeline definitions (training, monitoring), their compiler and their local/cluster runners."""
