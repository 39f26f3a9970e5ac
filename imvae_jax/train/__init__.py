"""Training and evaluation engine (``imvae train | evaluate | run``).

* :mod:`.state`: ``TrainState`` (step, params, rest, opt_state, key), ``make_optimizer``, ``create``;
* :mod:`.step`: ``Parallel`` (mesh, batch on ``P('data')``, state on ``P()``), ``make_train_step``,
  ``make_eval_step``;
* :mod:`.evaluate`: ``SplitEvaluator`` (sampled + full-catalogue metrics per domain and group);
* :mod:`.checkpoint`: every Orbax call (``Checkpoints``, ``check_compatible``);
* :mod:`.loop`: ``run(cfg, resume=...)`` -> the results.json dict; the run folder;
* :mod:`.distributed`: ``jax.distributed`` from flags or the environment;
* :mod:`.cli`: the sub-commands.
"""
