//! Pure types and rules of the domain: statuses, kinds, the schedule. No I/O here, and no
//! import of any other Rappel module: everyone imports `domain`, `domain` imports nobody.
//! (The enums derive diesel's column mapping and async-graphql's enum so rows and the API can
//! hold them typed without a mirror type per layer; derives only, no I/O.)

pub mod calendar;
pub mod gid;
pub mod payload;
pub mod placeholders;
pub mod schedule;
pub mod validation;
// Replies by email (issue 15).
pub mod replies;

/// Declares a closed set of values stored as upper-case text (with a CHECK constraint in both
/// migrations) and exposed as a GraphQL enum of the same spelling.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow, async_graphql::Enum,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

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
    Role {
        /// Everything a member may do, plus staff, webhooks and contact access tokens.
        Admin => "ADMIN",
        /// Works on the firm's catalogue, clients, missions and generated work.
        Member => "MEMBER",
    }
);

text_enum!(
    /// A mission's life: generation runs only while SIGNED.
    MissionStatus {
        /// Being prepared: everything may change, nothing is generated.
        Draft => "DRAFT",
        /// Agreed with the client: its lines generate tasks and requests on schedule.
        Signed => "SIGNED",
        /// Ended: nothing more is generated; open requests stay open.
        Ended => "ENDED",
        /// Cancelled: nothing more is generated and its open requests and tasks are cancelled.
        Cancelled => "CANCELLED",
    }
);

text_enum!(
    /// Whether a service item becomes an internal task or a client-facing request.
    ItemKind {
        /// An internal task for the firm; clients never see it.
        Task => "TASK",
        /// A request sent to the client's contacts, who answer it.
        InformationRequest => "INFORMATION_REQUEST",
    }
);

text_enum!(
    /// What the client is asked to hand over.
    DeliverableType {
        /// Documents such as invoices or statements.
        Documents => "DOCUMENTS",
        /// Figures such as payroll variables or stock values.
        Figures => "FIGURES",
        /// A declaration or confirmation by the client.
        Declaration => "DECLARATION",
        /// Anything else.
        Other => "OTHER",
    }
);

text_enum!(
    /// An internal task's state.
    TaskStatus {
        /// To do.
        Open => "OPEN",
        /// Completed by a member of the firm.
        Done => "DONE",
        /// Cancelled with its mission.
        Cancelled => "CANCELLED",
    }
);

text_enum!(
    /// An information request's state.
    RequestStatus {
        /// Waiting for the client's answer; reminders go out.
        Open => "OPEN",
        /// The client answered; reminders stop.
        Answered => "ANSWERED",
        /// Closed by the firm, answered or not; reminders stop.
        Closed => "CLOSED",
        /// Withdrawn with its mission; clients no longer see it.
        Cancelled => "CANCELLED",
    }
);

text_enum!(
    /// What an access token lets its bearer do.
    TokenKind { StaffSession => "STAFF_SESSION", Contact => "CONTACT", SignInLink => "SIGN_IN_LINK", Unsubscribe => "UNSUBSCRIBE" }
);

text_enum!(
    /// How a delivery leaves: an email to a contact or a POST to a webhook endpoint.
    DeliveryKind {
        /// An email to one contact.
        Email => "EMAIL",
        /// A signed HTTPS POST to one webhook endpoint.
        Webhook => "WEBHOOK",
    }
);

text_enum!(
    /// Where a delivery stands in the outbox.
    DeliveryStatus {
        /// Waiting to be sent, or to be retried at `nextAttemptAt`.
        Pending => "PENDING",
        /// Accepted by the mail server or the webhook consumer.
        Delivered => "DELIVERED",
        /// Refused for good (a permanent error); `redeliver` sends it again.
        Failed => "FAILED",
        /// Given up after the most attempts allowed; `redeliver` sends it again.
        Dead => "DEAD",
        /// Not sent: its endpoint or contact was disabled meanwhile; `redeliver` sends it.
        Skipped => "SKIPPED",
    }
);

text_enum!(
    /// The events a delivery carries; webhook endpoints subscribe to the request events.
    DeliveryEvent {
        /// A request was created (webhook event `information_request.created`).
        RequestCreated => "information_request.created",
        /// A follow-up reminder of an open request (`information_request.reminder`).
        RequestReminder => "information_request.reminder",
        /// The client answered a request (`information_request.answered`).
        RequestAnswered => "information_request.answered",
        /// The firm closed a request (`information_request.closed`).
        RequestClosed => "information_request.closed",
        /// An endpoint was disabled after failing too long (`webhook_endpoint.disabled`).
        EndpointDisabled => "webhook_endpoint.disabled",
    }
);

text_enum!(
    /// A language Rappel writes emails in.
    Language {
        /// French.
        French => "fr",
        /// English.
        English => "en",
    }
);
