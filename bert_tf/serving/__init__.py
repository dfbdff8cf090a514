"""Serving: string-in SavedModels for TF Serving, TFLite conversion, a development server and a
client. Import the submodules (`bert_tf.serving.export`, `.tflite`, `.server`, `.client`)."""
