"""The procedural world: a pure-JAX 2-D tabletop with robots and a human (see env.py).

Modules: catalogue (named scenes, tasks, embodiments, settings; no jax), config (sizes, EnvConfig,
EpisodeSpec), tables (catalogue as arrays), state (State, reset), dynamics (step, kinematics),
tasks (success, phases, language), render (rasterizer), experts (scripted experts),
env (the public functional API), episodes (expert rollouts as numpy for the RLDS writer).
Import the submodules you need; `import h2r.world` stays free of jax.
"""
