"""SQuAD v1.1 fine-tuning: training features with labels (``data``) and the training loop, checkpoints,
resume and dev scoring (``finetune``), shared by ``mlperf-bert finetune`` and quantization-aware training."""
