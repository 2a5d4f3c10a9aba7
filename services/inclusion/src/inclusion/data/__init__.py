"""Data files shipped with inclusion (postcode district centroids)."""
