//! A firm built through the operations (`rappel::ops`), for tests that start from a catalogue,
//! a client and a mission: no GraphQL, no HTTP, the same rules as every door.

use chrono::{Duration, NaiveDate, Utc};
use rappel::db::Pool;
use rappel::db::catalog::Service;
use rappel::db::clients::{Client, Contact};
use rappel::db::firms::Firm;
use rappel::db::missions::Mission;
use rappel::domain::schedule::Frequency;
use rappel::domain::{DeliverableType, ItemKind, Role};
use rappel::generation::{GenerationSettings, firm_today};
use rappel::ops::catalog::{ServiceInput, ServiceItemInput};
use rappel::ops::clients::{ClientInput, ContactInput};
use rappel::ops::missions::{MissionInput, MissionLineInput};
use rappel::ops::staff::FirmInput;
use rappel::ops::{self, Actor, Env};

use super::app::PASSWORD;

/// A firm with its admin, as operations see them.
pub struct FirmFixture {
    pub pool: Pool,
    pub settings: GenerationSettings,
    pub firm: Firm,
    pub admin_id: i64,
    pub admin_email: String,
}

impl FirmFixture {
    /// Creates a firm (Europe/Paris, French) whose admin is `admin@{tag}.example.fr`.
    pub async fn create(pool: &Pool, tag: &str) -> Self {
        let settings = GenerationSettings::default();
        let admin_email = format!("admin@{tag}.example.fr");
        let created = ops::staff::create_firm(
            Env::new(pool, &settings),
            &FirmInput {
                name: &format!("Cabinet {tag}"),
                admin_email: &admin_email,
                admin_password: Some(PASSWORD),
                time_zone: "Europe/Paris",
                locale: "fr",
            },
        )
        .await
        .unwrap_or_else(|error| panic!("firm {tag}: {error:?}"));
        Self {
            pool: pool.clone(),
            settings,
            firm: created.firm,
            admin_id: created.admin.id,
            admin_email,
        }
    }

    pub fn env(&self) -> Env<'_> {
        Env::new(&self.pool, &self.settings)
    }

    /// The firm's admin as an actor.
    pub fn admin(&self) -> Actor {
        Actor::Staff {
            user_id: self.admin_id,
            firm_id: self.firm.id,
            role: Role::Admin,
        }
    }

    /// The firm's local today.
    pub fn today(&self) -> NaiveDate {
        firm_today(&self.firm, Utc::now())
    }

    /// A member (not admin) of the firm, invited by the admin.
    pub async fn member(&self, name: &str) -> Actor {
        let invitation = ops::staff::invite_staff_member(
            self.env(),
            &self.admin(),
            &format!("{name}@{}.example.fr", self.firm.id),
            name,
            Role::Member,
        )
        .await
        .expect("member invited");
        Actor::Staff {
            user_id: invitation.member.id,
            firm_id: self.firm.id,
            role: Role::Member,
        }
    }

    /// A service created `lead_days` before each due date with one request and one task.
    pub async fn service(&self, title: &str, lead_days: i32) -> Service {
        ops::catalog::create_service(
            self.env(),
            &self.admin(),
            &ServiceInput {
                category_id: None,
                title: title.into(),
                deliverable_type: DeliverableType::Documents,
                lead_days,
                items: vec![
                    ServiceItemInput {
                        id: None,
                        kind: ItemKind::InformationRequest,
                        title: format!("{title}: vos pièces"),
                    },
                    ServiceItemInput {
                        id: None,
                        kind: ItemKind::Task,
                        title: format!("{title}: préparer"),
                    },
                ],
                reminder_policy: None,
            },
        )
        .await
        .expect("service")
    }

    /// A client with one contact.
    pub async fn client_with_contact(&self, name: &str) -> (Client, Contact) {
        let client = ops::clients::create_client(
            self.env(),
            &self.admin(),
            &ClientInput {
                name: name.into(),
                reference: None,
            },
        )
        .await
        .expect("client");
        let contact = ops::clients::add_contact(
            self.env(),
            &self.admin(),
            client.id,
            &ContactInput {
                name: format!("Contact {name}"),
                email: format!("contact{}@client.example.fr", client.id),
                language: None,
                notifications_enabled: true,
            },
        )
        .await
        .expect("contact");
        (client, contact)
    }

    /// A DRAFT monthly mission of `service` for `client`, started 90 days ago (so signing
    /// catches up past periods) and ending in 300 days.
    pub async fn monthly_mission(&self, client: &Client, service: &Service) -> Mission {
        let today = self.today();
        ops::missions::create_mission(
            self.env(),
            &self.admin(),
            &MissionInput {
                client_id: client.id,
                name: "Mensuelle".into(),
                start_date: today - Duration::days(90),
                end_date: Some(today + Duration::days(300)),
                lines: vec![MissionLineInput {
                    service_id: service.id,
                    frequency: Frequency::Monthly,
                    first_due_date: None,
                    quantity: None,
                    rrule: None,
                    working_day_adjustment: None,
                }],
            },
        )
        .await
        .expect("mission")
    }
}
