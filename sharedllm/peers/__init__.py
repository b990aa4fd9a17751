"""HTTP between peers: the aiohttp client every part uses to reach nodes, with its limits,
and the ``/info`` probe. Wire formats stay in ``protocol``; this package moves them."""
