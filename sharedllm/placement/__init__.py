"""Where a node should sit: how many layers fit a machine, which span the network covers
worst, and the registry's layer coverage. Pure rules, shared by nodes and clients."""
