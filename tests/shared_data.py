"""Where the real third-party test material is: ../shared/data beside the checkout.

Tests that use it skip cleanly when it is absent (a user's fresh clone has no ../shared).
Override with BERT_TF_SHARED_DATA.
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BERT_TF_SHARED_DATA", REPO.parent / "shared" / "data"))
GOOGLE_CKPT_INDEX = SHARED_DATA / "google_ckpt_index"
GLUE = SHARED_DATA / "glue"
