// Builds and validates the client schema from the introspection of every kind of caller
// (anonymous, a contact, a member, an admin) with graphql-js, against a real `rappel serve`,
// and checks that a contact's schema names nothing firm-only.
//
//   RAPPEL_URL=http://127.0.0.1:8080 STAFF_TOKEN=rpl_... CONTACT_TOKEN=rpl_... node schemas.mjs
import assert from 'node:assert/strict';
import { buildClientSchema, getIntrospectionQuery, validateSchema, printSchema } from 'graphql';

const url = `${process.env.RAPPEL_URL}/graphql`;

// Every name a contact must never meet: firm-only types, root fields, arguments and enum values.
export const FIRM_ONLY_NAMES = [
  // types
  'FirmView', 'Task', 'InformationRequest', 'Mission', 'MissionLine', 'Service', 'ServiceItem',
  'Category', 'Client', 'Contact', 'StaffMember', 'StaffInvitation', 'Delivery', 'DeliveryAttempt',
  'WebhookEndpoint', 'WebhookEndpointWithSecret', 'TaskStatus', 'MissionStatus', 'DeliveryStatus',
  'CreateServiceInput', 'CreateMissionInput', 'MissionLineInput', 'ServiceItemInput', 'Frequency', 'ItemKind',
  'PreviewOccurrence', 'WorkingDayAdjustment', 'ReminderPolicy', 'ReminderPolicyInput',
  'DeliveryEvent', 'DeliveryKind', 'RequestAnswer', 'UpdateMissionInput', 'CreateClientInput',
  'AddContactInput', 'UpdateContactInput', 'UpdateServiceInput', 'UpdateClientInput',
  'CreateCategoryInput', 'RenameCategoryInput', 'ReorderServiceItemsInput', 'AddMissionLineInput',
  'EndMissionInput', 'AssignTaskInput', 'InviteStaffMemberInput', 'CreateContactAccessTokenInput',
  'SignMissionsInput', 'CompleteTasksInput', 'CloseRequestsInput', 'ImportClientsInput',
  'CreateWebhookEndpointInput', 'UpdateWebhookEndpointInput', 'DisableWebhookEndpointInput',
  'UpdateMyPreferencesInput', 'ClientConnection', 'TaskConnection', 'DeliveryConnection',
  'InformationRequestConnection', 'Role', 'CategoryConnection', 'CategoryEdge', 'ClientEdge',
  'DeliveryEdge', 'InformationRequestEdge', 'MissionConnection', 'MissionEdge',
  'RequestAnswerConnection', 'RequestAnswerEdge', 'ServiceConnection', 'ServiceEdge',
  'StaffMemberConnection', 'StaffMemberEdge', 'TaskEdge', 'WebhookEndpointConnection',
  'WebhookEndpointEdge', 'ContactConnection', 'ContactEdge', 'DeliveryAttemptConnection',
  'DeliveryAttemptEdge', 'DeliveryAttemptOutcome', 'WebhookEvent',
  // fields and arguments (Query / Mutation)
  'firm', 'createCategory', 'renameCategory', 'createService', 'updateService', 'archiveService',
  'createClient', 'updateClient', 'archiveClient', 'addContact', 'updateContact', 'archiveContact',
  'createMission', 'updateMission', 'addMissionLine', 'signMission', 'endMission', 'cancelMission',
  'completeTask', 'reopenTask', 'assignTask', 'closeRequest', 'reopenRequest',
  'inviteStaffMember', 'removeStaffMember', 'createContactAccessToken',
  'createWebhookEndpoint', 'updateWebhookEndpoint', 'disableWebhookEndpoint',
  'enableWebhookEndpoint', 'rotateWebhookSecret', 'deleteWebhookEndpoint', 'redeliver',
  'tasks', 'informationRequests', 'missions', 'deliveries', 'webhookEndpoints', 'schedulePreview',
  'assignee', 'leadDays', 'deliverableType', 'secret', 'clientId', 'serviceId', 'role',
  'temporaryPassword', 'attemptLog', 'lastError',
  // replies by email (issue 15)
  'HeldReply', 'HeldReplyConnection', 'HeldReplyEdge', 'heldReplies', 'acceptHeldReply',
  'rejectHeldReply',
  // enum values
  'ADMIN', 'MEMBER', 'SIGNED', 'DEAD',
];

async function introspect(token) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }) }),
  });
  assert.equal(response.status, 200, `introspection answered ${response.status}`);
  const body = await response.json();
  assert.equal(body.errors, undefined, `introspection failed: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/// Every name a schema's SDL mentions: types, fields, arguments, enum values.
function namesOf(schema) {
  const names = new Set();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    names.add(type.name);
    if (type.getFields) {
      for (const field of Object.values(type.getFields())) {
        names.add(field.name);
        for (const arg of field.args ?? []) names.add(arg.name);
      }
    }
    if (type.getValues) for (const value of type.getValues()) names.add(value.name);
  }
  return names;
}

async function post(token, query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  assert.equal(body.errors, undefined, `${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/// A member of the demo firm, invited by its admin, signed in: their token.
export async function memberToken(staffToken) {
  const email = `member-${Date.now()}@cabinet-demo.fr`;
  const invited = await post(staffToken,
    'mutation($email: String!) { inviteStaffMember(input: { email: $email, name: "Membre" }) { temporaryPassword } }',
    { email });
  const session = await post(null,
    'mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }',
    { email, password: invited.inviteStaffMember.temporaryPassword });
  return session.login.token;
}

export async function checkSchemas({ label, tokens }) {
  const schemas = {};
  for (const [caller, token] of Object.entries(tokens)) {
    const introspection = await introspect(token);
    // buildClientSchema throws on a type it cannot find (a field typed with a hidden type).
    const schema = buildClientSchema(introspection);
    const errors = validateSchema(schema);
    assert.deepEqual(errors.map(String), [], `${label}: the ${caller}'s schema is invalid`);
    printSchema(schema);
    schemas[caller] = schema;
    console.log(`ok - ${label}: the ${caller}'s schema builds and validates (${Object.keys(schema.getTypeMap()).length} types)`);
  }
  const contactNames = namesOf(schemas.contact);
  const leaked = FIRM_ONLY_NAMES.filter((name) => contactNames.has(name));
  assert.deepEqual(leaked, [], `${label}: the contact's schema names firm-only things`);
  // The list is not empty words: the admin's schema names every one of them.
  const adminNames = namesOf(schemas.admin);
  const unknown = FIRM_ONLY_NAMES.filter((name) => !adminNames.has(name));
  assert.deepEqual(unknown, [], `${label}: names listed as firm-only that the admin's schema lacks`);
  console.log(`ok - ${label}: the contact's schema names none of ${FIRM_ONLY_NAMES.length} firm-only names`);
  assert.ok(contactNames.has('answerRequest') && contactNames.has('ClientRequest'), 'the contact sees its own view');
  assert.ok(!namesOf(schemas.admin).has('answerRequest'), 'staff do not see the contact-only mutation');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await checkSchemas({
    label: 'direct',
    tokens: {
      anonymous: null,
      contact: process.env.CONTACT_TOKEN,
      member: await memberToken(process.env.STAFF_TOKEN),
      admin: process.env.STAFF_TOKEN,
    },
  });
}
