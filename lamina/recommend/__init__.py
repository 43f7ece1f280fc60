"""Recommendations: a log of user–item interactions → a two-tower network that ranks items for users.

``data.py`` turns the log into positives and a per-user split, ``metrics.py`` scores full rankings, ``baselines.py``
holds the most-popular and EASE models, ``towers.py`` the network, ``train.py`` the training run, ``model.py`` the
trained ``Recommender`` (save / load / recommend / similar), ``commands.py`` what the CLI calls.
"""
