"""LightningModules: backbone pretraining, judge pretraining, the ChatFace mapper and the baselines."""
