"""Export the statsmodels-provided data sets used by make_reference.R to CSV.

Run once with the project venv (statsmodels 0.15.0 was used):
    python export_data.py
The R data sets (MASS::quine, warpbreaks, InsectSprays) are written by
export_r_data.R.  Only the columns used by the reference cases are kept.
Floats are written with Python's shortest round-trip repr.
"""

import os
import shutil

import pandas as pd
import statsmodels.api as sm

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(os.path.dirname(sm.__file__), "genmod", "tests", "results")


def out(name):
    return os.path.join(HERE, name)


# statsmodels.datasets (load_pandas()).data, columns as statsmodels names them
sm.datasets.scotland.load_pandas().data[
    ["YES", "COUTAX", "UNEMPF", "MOR", "ACT", "GDP", "AGE", "COUTAX_FEMALEUNEMP"]
].to_csv(out("scotland.csv"), index=False)

# star98: load_pandas() already turns the raw file into NABOVE = successes,
# NBELOW = failures (see statsmodels/datasets/star98/data.py)
sm.datasets.star98.load_pandas().data.to_csv(out("star98.csv"), index=False)

sm.datasets.longley.load_pandas().data[
    ["TOTEMP", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
].to_csv(out("longley.csv"), index=False)

sm.datasets.spector.load_pandas().data[["GRADE", "GPA", "TUCE", "PSI"]].to_csv(
    out("spector.csv"), index=False
)

# statsmodels/genmod/tests/results/*.csv, copied byte for byte where possible
shutil.copyfile(os.path.join(RES, "stata_cancer_glm.csv"), out("cancer.csv"))
shutil.copyfile(os.path.join(RES, "stata_medpar1_glm.csv"), out("medpar1.csv"))

# inv_gaussian.csv: header + first 5000 rows, text kept verbatim
with open(os.path.join(RES, "inv_gaussian.csv")) as f:
    lines = f.readlines()[:5001]
with open(out("inv_gaussian.csv"), "w") as f:
    f.writelines(lines)

# lbw: keep the columns of statsmodels' Lbw model (race expanded in R)
pd.read_csv(os.path.join(RES, "stata_lbw_glm.csv"))[
    ["low", "age", "lwt", "race", "smoke", "ptl", "ht", "ui"]
].to_csv(out("lbw.csv"), index=False)
