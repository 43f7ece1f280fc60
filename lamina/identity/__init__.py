"""Identity models: enrol people into a gallery, identify and verify them (lamina enroll / identify / verify)."""
