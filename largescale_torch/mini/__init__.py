"""A miniature of Table 1 on a CPU: pretrain, finetune on forward facts, ask in reverse.

corpus.py    the three datasets shrunk, the word-level tokenizer, the background corpus (stage 1 data)
pretrain.py  one initialisation per seed for MDM and ARM, stage 1 with each model's own objective
readings.py  stage 3: entity rank, the positive control, Figure 7 (a, b, c)
run.py       MiniConfig and the orchestration over seeds and model families (stage 2 = training.run)
report.py    the table beside the paper's Table 1, the figure and the RESULTS.md section
"""
