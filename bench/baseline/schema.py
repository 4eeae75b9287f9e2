"""The recipe's tables and trigger, created in the bench database by plain SQL.

The baseline's tables have the columns of ours; the raw broadcast loop and the writers
scenario each get a table and channel of their own so none wakes another's listener.
"""

from psycopg import sql

BASELINE_TABLES = [
    "bench_baseline_humandetections",
    "bench_baseline_lotodetections",
    "bench_baseline_ppedetections",
]
BASELINE_CHANNEL = "bench_baseline_channel"
RAW_TABLES = ["bench_raw_detections"]
RAW_CHANNEL = "bench_raw_channel"
# The writers scenario's: the recipe's trigger, with a session of the bench's listening.
RECIPE_TABLES = ["bench_recipe_detections"]
RECIPE_CHANNEL = "bench_recipe_channel"

# The recipe's trigger: the whole row as the payload (TG_ARGV[0] names the channel).
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_notify_row() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], json_build_object(
        'table', TG_TABLE_NAME, 'action', TG_OP, 'data', row_to_json(NEW))::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

TABLE = """
CREATE TABLE {table} (
    id bigserial PRIMARY KEY,
    camera_id integer NOT NULL,
    violation_date date NOT NULL,
    violation_time time NOT NULL,
    violation_image text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

TRIGGER = """
CREATE TRIGGER {trigger} AFTER INSERT ON {table}
FOR EACH ROW EXECUTE FUNCTION bench_notify_row({channel})
"""


def statements() -> list[sql.Composable]:
    """Everything to run, in order, in a fresh bench database."""
    result: list[sql.Composable] = [sql.SQL(NOTIFY_FUNCTION)]
    for tables, channel in (
        (BASELINE_TABLES, BASELINE_CHANNEL),
        (RAW_TABLES, RAW_CHANNEL),
        (RECIPE_TABLES, RECIPE_CHANNEL),
    ):
        for table in tables:
            result.append(sql.SQL(TABLE).format(table=sql.Identifier(table)))
            result.append(
                sql.SQL(TRIGGER).format(
                    trigger=sql.Identifier(f"{table}_notify"),
                    table=sql.Identifier(table),
                    channel=sql.Literal(channel),
                )
            )
    return result
