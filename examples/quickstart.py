"""Fit, predict, explain, save and load: 5,000 rows of the Adult census table."""

from sklearn.model_selection import train_test_split

import widemm
from widemm.datasets import load_adult

# 14 columns (8 categorical, 6 numeric, real missing values) and the target.
df = load_adult().sample(5_000, random_state=0)
y = df.pop("income")
X_train, X_test, y_train, y_test = train_test_split(df, y, random_state=0)

model = widemm.WideDeepClassifier(random_state=0).fit(X_train, y_train)
print(model.schema_)  # the role fit gave each column
print(model.scores(X_test, y_test))  # accuracy, ROC AUC, log loss
print(model.predict_proba(X_test.head(3)))

# Each column's share of each prediction; they add up to the model's output.
explanation = model.explain(X_test.head(3))
print(explanation)

model.save("adult-model")  # safetensors + JSON, no pickle
same = widemm.load("adult-model")
assert (same.predict_proba(X_test) == model.predict_proba(X_test)).all()
