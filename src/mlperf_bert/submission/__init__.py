"""Submission-ready output (accuracy targets live in ``accuracy.targets``): what each official checker
version requires (``versions``), the submission tree in the v1.0 or current layout (``tree``), our checker of
those rules (``checker``), compliance TEST01/TEST05 (``compliance``), the system description (``system``) and
the one-command job (``submit``)."""
