"""Scale-out: backend replicas on other processes and machines behind the ``Backend`` protocol (``ray_pool``)."""
