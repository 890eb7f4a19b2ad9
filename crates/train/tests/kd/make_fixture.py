"""Reference values for didact's token-level distillation losses, from TRL's own code.

    pip install trl==1.16.0 torch==2.9.0
    python crates/train/tests/kd/make_fixture.py > crates/train/tests/kd/gkd.json

Calls `GKDTrainer.generalized_jsd_loss` (trl.experimental.gkd, TRL 1.16.0; Agarwal et al.
2024, eq. 1) on seeded random logits with -100 labels masking some positions, for beta in
{0 (forward KL), 0.1, 0.5, 0.9, 1 (reverse KL)} and temperatures 1 and 2, reduction
"batchmean" (sum over the vocabulary and the unmasked positions / their number). Also the
gradient of the loss w.r.t. the student logits, which a trainer follows.
"""

import json
import os
import sys

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
import torch
import trl
from trl.experimental.gkd import GKDTrainer


def case(seed, b, t, v, beta, temperature):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(b, t, v, generator=g) * 2.0).double().requires_grad_(True)
    teacher = (torch.randn(b, t, v, generator=g) * 2.0).double()
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[0, :2] = -100  # a prompt
    labels[-1, -1] = -100  # padding
    loss = GKDTrainer.generalized_jsd_loss(
        student, teacher, labels=labels, beta=beta, temperature=temperature
    )
    loss.backward()
    return {
        "beta": beta,
        "temperature": temperature,
        "shape": [b, t, v],
        "student_logits": student.detach().flatten().tolist(),
        "teacher_logits": teacher.flatten().tolist(),
        "mask": (labels != -100).int().flatten().tolist(),
        "loss": loss.item(),
        "grad_student_logits": student.grad.flatten().tolist(),
    }


cases = []
seed = 0
for beta in [0.0, 0.1, 0.5, 0.9, 1.0]:
    for temperature in [1.0, 2.0]:
        seed += 1
        cases.append(case(seed, 2, 5, 7, beta, temperature))
json.dump(
    {
        "source": "trl.experimental.gkd.GKDTrainer.generalized_jsd_loss",
        "trl": trl.__version__,
        "torch": torch.__version__,
        "script": "crates/train/tests/kd/make_fixture.py",
        "cases": cases,
    },
    sys.stdout,
)
