//! Pure types and rules of the domain: statuses, kinds, the schedule. No I/O here, and no
//! import of any other Rappel module: everyone imports `domain`, `domain` imports nobody.
//! (The enums derive diesel's column mapping and async-graphql's enum so rows and the API can
//! hold them typed without a mirror type per layer; derives only, no I/O.)

pub mod calendar;
pub mod payload;
pub mod schedule;
pub mod validation;

/// Declares a closed set of values stored as upper-case text (with a CHECK constraint in both
/// migrations) and exposed as a GraphQL enum of the same spelling.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow, async_graphql::Enum,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and displayed spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownValue { kind: stringify!($name), value: other.to_string() }),
                }
            }
        }
    };
}

/// A stored text that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

text_enum!(
    /// What a staff member may do in the firm view.
    Role { Admin => "ADMIN", Member => "MEMBER" }
);

text_enum!(
    /// A mission's life: generation runs only while SIGNED.
    MissionStatus { Draft => "DRAFT", Signed => "SIGNED", Ended => "ENDED", Cancelled => "CANCELLED" }
);

text_enum!(
    /// Whether a service item becomes an internal task or a client-facing request.
    ItemKind { Task => "TASK", InformationRequest => "INFORMATION_REQUEST" }
);

text_enum!(
    /// What the client is asked to hand over.
    DeliverableType { Documents => "DOCUMENTS", Figures => "FIGURES", Declaration => "DECLARATION", Other => "OTHER" }
);

text_enum!(
    /// An internal task's state.
    TaskStatus { Open => "OPEN", Done => "DONE", Cancelled => "CANCELLED" }
);

text_enum!(
    /// An information request's state.
    RequestStatus { Open => "OPEN", Answered => "ANSWERED", Closed => "CLOSED", Cancelled => "CANCELLED" }
);

text_enum!(
    /// What an access token lets its bearer do.
    TokenKind { StaffSession => "STAFF_SESSION", Contact => "CONTACT", SignInLink => "SIGN_IN_LINK", Unsubscribe => "UNSUBSCRIBE" }
);

text_enum!(
    /// How a delivery leaves: an email to a contact or a POST to a webhook endpoint.
    DeliveryKind { Email => "EMAIL", Webhook => "WEBHOOK" }
);

text_enum!(
    /// Where a delivery stands in the outbox.
    DeliveryStatus { Pending => "PENDING", Delivered => "DELIVERED", Failed => "FAILED", Dead => "DEAD", Skipped => "SKIPPED" }
);

text_enum!(
    /// The events a delivery carries; webhook endpoints subscribe to the request events.
    DeliveryEvent {
        RequestCreated => "information_request.created",
        RequestReminder => "information_request.reminder",
        RequestAnswered => "information_request.answered",
        RequestClosed => "information_request.closed",
        EndpointDisabled => "webhook_endpoint.disabled",
    }
);

text_enum!(
    /// A language Rappel writes emails in.
    Language { French => "fr", English => "en" }
);
