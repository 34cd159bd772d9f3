"""Official model/data artifacts and local models.

``registry`` (pure data: URLs, md5, interfaces of the official BERT-Large files and the SQuAD dev set),
``download`` (streamed, resumable, md5-checked downloads), ``local`` (which models exist on this machine).
Import the submodules directly; this package imports nothing heavy.
"""
