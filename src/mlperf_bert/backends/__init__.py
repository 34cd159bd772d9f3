"""Model runtimes behind the small ``Backend`` protocol, one file each, loaded lazily via ``registry``."""
