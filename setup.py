"""bert_tf: BERT for TensorFlow 2 / Keras 3 — Google checkpoints, in-graph tokenization,
tf.distribute training, TF Serving and TFLite export."""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tensorflow==2.21.*",
    "tensorflow-text==2.21.*",
    "keras>=3.15,<4",
    "keras-hub==0.32.*",
    "tensorflow-serving-api==2.21.*",
    "absl-py>=2.1",
    "numpy>=1.26",
    "safetensors==0.8.0",
]

setup(
    name="bert_tf",
    version="0.1.0",
    description="BERT for TensorFlow 2 / Keras 3 with Google checkpoint compatibility",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["bert_tf", "bert_tf.*"]),
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist: `make test` runs the suite in two processes (CI on 2 cores: 31 -> 16 min).
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.6"],
        # Peers measured by bench/pretraining.py (PyTorch CPU build where the index offers one).
        "bench": ["torch==2.13.0", "transformers>=5,<6"],
    },
    include_package_data=True,
    # configs/ (a symlink in a checkout) is bert_tf/configs: model sizes usable by name.
    package_data={"bert_tf": ["py.typed", "configs/*.json", "configs/demo/*"]},
    entry_points={"console_scripts": ["bert-tf = bert_tf.cli.main:main"]},
    license="Apache-2.0",
)
