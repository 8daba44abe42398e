//! Background audit of the objects already stored in a cluster (`regate audit`): which kinds the loaded
//! policies match ([`kinds`]), which policies cannot be judged without an admission request
//! ([`request_dependence`]), the paginated listing and evaluation of every object ([`scan`]) and the
//! per-policy, per-namespace and per-tenant summary ([`summary`]).

pub mod kinds;
pub mod request_dependence;
pub mod scan;
pub mod summary;
