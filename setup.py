"""h2r: measure when human-to-robot transfer emerges in VLA policies.

The pins below were installed together and checked on CPython 3.11 (see BUILD_NOTES.md,
"Pinned versions"). Change one only after re-running the whole test suite.
"""
from setuptools import setup

CORE = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "grain==0.2.18",
    "tensorflow-datasets==4.9.10",
    "array-record==0.8.6",
    "ml-collections==1.1.0",
    "clu==0.0.12",
    "numpy==2.4.6",
    "etils==1.15.0",
    "protobuf==7.36.2",
    "tensorstore==0.1.86",
    "absl-py==2.5.1",
    # Not pulled in by tfds but needed for its Image feature (tensorflow/datasets#11212).
    "pillow==13.0.0",
    "importlib_resources==7.1.0",
    # clu.metric_writers imports TF + tensorboard; the pipeline benchmark compares with tf.data.
    "tensorflow-cpu==2.21.0",
    "tensorboard==2.21.0",
    # Pictures (contact sheets, emergence curves, t-SNE) and the embedding analysis.
    "matplotlib==3.11.2",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
]

setup(
    name="h2r",
    version="0.1.0",
    description="Measure when human-to-robot transfer emerges in vision-language-action policies.",
    python_requires=">=3.11,<3.12",
    # launch/ lives at the top level (the layout shows the architecture) but installs as
    # h2r.launch, so it cannot clash with other packages named `launch` (ROS 2 has one).
    packages=[
        "h2r", "h2r.world", "h2r.data", "h2r.model", "h2r.train", "h2r.eval", "h2r.study", "h2r.study.report",
        "h2r.launch",
    ],
    package_dir={"h2r": "h2r", "h2r.launch": "launch"},
    install_requires=CORE,
    extras_require={"test": ["pytest==9.2.0", "pytest-xdist==3.8.0"]},
    entry_points={"console_scripts": ["h2r = h2r.cli:main"]},
)
