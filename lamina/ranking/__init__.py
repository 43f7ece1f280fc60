"""The two-tower recommender below the faces: ``data`` turns an interaction log into positives and a per-user
split, ``metrics`` scores full rankings, ``baselines`` holds most-popular and EASE, ``towers`` the network,
``features`` the history matrices the user tower reads, ``model`` the trained ``Recommender`` (what the model
directory stores), ``task`` the loop's task, ``fit`` a recommendation run's training. ``lamina.recommend`` is its
face (the ``recommend`` / ``similar`` commands).
"""
