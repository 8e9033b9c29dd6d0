"""Run time: the predictors (eager, compiled, ONNX Runtime) behind one interface, and the one
chooser of which of them answers (:func:`prime_model.runtime.loader.create_predictor`).

Never imports :mod:`prime_model.export`: a model is exported once, by the export step or
``prime export``, and only loaded here.
"""
