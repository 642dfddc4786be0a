"""Public benchmark protocols: published data sets run through orderguard's own feature and training code.

* ``handbook_features`` - the 15 baseline features of the fraud-detection handbook's
  simulated card transactions, declared as FeatureSpecs (``handbook.yaml``) and
  computed by the batch engine.

Nothing is imported here, so importing the package never pulls in DuckDB.
"""
