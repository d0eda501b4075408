"""Trains the demo model MLServer serves in docker-compose.yml: a random forest on
scikit-learn's bundled wine data (no download), saved with its model-settings.json."""
import json
import os
import sys

import joblib
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
X, y = load_wine(return_X_y=True)
model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
joblib.dump(model, os.path.join(out, "model.joblib"))
settings = {
    "name": "wine-rf",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib", "version": "1"},
}
with open(os.path.join(out, "model-settings.json"), "w") as f:
    json.dump(settings, f, indent=2)
print(f"wine-rf trained on {len(y)} rows into {out}")
