"""What a user calls: ``train``/``train_iter`` and ``predict``/``predict_lazy`` take
arrays, paths or saved models (through ``io``) and drive the engine. The top-level
package re-exports them."""
