"""CT repository: de-identification at the site, the series index, cohorts and exports.

A research tool beside the clinical path, not part of it: nothing here is imported by the
pipeline, the service's clinical routes or the jobs that synthesize. What leaves a site is only
what this item de-identified, with pseudonyms keyed by a secret that never leaves the site.
"""
