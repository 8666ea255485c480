"""De-identification at the site: the PS3.15 profile with its options, keyed pseudonyms,
descriptor cleaning and the private safe-list."""
