"""A seldon-core v1 model class serving one scikit-learn classifier (a joblib file).

seldon-core-microservice imports this class by name; the file to load comes from the
SELDON_JOBLIB environment variable (see test/e2e/peers.ts, startSeldon). predict()
answers with class probabilities, the usual Seldon sklearn server's behaviour.
"""

import os

import joblib
import numpy as np


class SklearnModel:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["SELDON_JOBLIB"])

    def predict(self, X, features_names=None):  # noqa: N803 (seldon's signature)
        return self.model.predict_proba(np.asarray(X, dtype=np.float64))
