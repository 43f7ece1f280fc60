"""``task: anomaly``: unlabelled rows in, a score per row out (how unusual it is), with a threshold and, when a
label column exists, an evaluation of the scores against it and against classical detectors."""
