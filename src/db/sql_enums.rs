//! Column mapping of the domain's text enums for both backends: stored as their upper-case
//! text, read back through `FromStr` so an unknown stored value is an error, not a guess.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use std::io::Write;

use crate::domain::schedule::{Frequency, WorkingDayAdjustment};
use crate::domain::*;

macro_rules! text_columns {
    ($($name:ty),+ $(,)?) => {$(
        impl ToSql<Text, Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    )+};
}

text_columns!(
    Role,
    MissionStatus,
    ItemKind,
    DeliverableType,
    TaskStatus,
    RequestStatus,
    TokenKind,
    DeliveryKind,
    DeliveryStatus,
    DeliveryEvent,
    Language,
    Frequency,
    WorkingDayAdjustment,
);
