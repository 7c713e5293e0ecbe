//! The fault switch of the black-box tests, compiled only with the `faults` feature (which
//! `make test` turns on, and `make dev`, `make bench` and `make package` do not).
//!
//! A test puts an item `FAULT#<tenant slug>` / `<step>` in the table before it creates the
//! tenant: `{kind: "transient", remaining: N}` fails the step's next N attempts with a
//! transient error; `{kind: "permanent"}` fails every attempt until the item is deleted.

use crate::StepError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::domain::tenant::Tenant;

pub struct Faults {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Faults {
    pub async fn check(
        &self,
        t: &Tenant,
        step: shared::domain::tenant::Step,
    ) -> Result<(), StepError> {
        let step = step.as_str();
        let (pk, sk) = shared::store::fault_switch_key(t.slug.as_str(), step);
        let (pk, sk) = (AttributeValue::S(pk), AttributeValue::S(sk));
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", pk.clone())
            .key("SK", sk.clone())
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StepError::Transient(format!("fault switch unreadable: {e}")))?;
        let Some(item) = item.item() else {
            return Ok(());
        };
        match item
            .get("kind")
            .and_then(|k| k.as_s().ok())
            .map(String::as_str)
        {
            Some("permanent") => Err(StepError::Permanent(format!(
                "injected permanent fault in {step}"
            ))),
            Some("transient") => {
                // One attempt used up, atomically: concurrent attempts cannot share it.
                let used = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("PK", pk)
                    .key("SK", sk)
                    .update_expression("SET remaining = remaining - :one")
                    .condition_expression("remaining > :zero")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                    .send()
                    .await;
                match used {
                    Ok(_) => Err(StepError::Transient(format!(
                        "injected transient fault in {step}"
                    ))),
                    Err(SdkError::ServiceError(e))
                        if e.err().is_conditional_check_failed_exception() =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(StepError::Transient(format!("fault switch: {e}"))),
                }
            }
            _ => Ok(()),
        }
    }
}
