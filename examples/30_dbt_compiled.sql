-- What `dbt run` sends to PostgreSQL for the project in examples/dbt, run
-- twice: first into an empty schema, then again (the incremental run).
--
-- dbt itself cannot be installed here, so this is the SQL of dbt-postgres's
-- materializations written out: the view materialization for staging
-- (create a __dbt_tmp view, move an existing view to __dbt_backup, rename,
-- commit, drop the backup) and the incremental materialization for the mart
-- (CREATE TABLE AS on the first run; on later runs a temporary table of the
-- new rows, then the default strategy for a unique_key: delete+insert).
-- {{ source() }}, {{ ref() }} and {{ this }} are resolved as dbt resolves
-- them, except that dbt prefixes every relation with the database name
-- ("postscript_demo"."analytics"....), left out so that the file runs in any
-- database.  Also left out: dbt's /* {"app": "dbt", ...} */ query comments
-- and its catalog queries (which relations exist, the temp table's columns).
-- scripts/checks/dbt_compiled.sh verifies that the model bodies below are
-- the models' rendering.

-- dbt run #1 ---------------------------------------------------------------

create schema if not exists "analytics";

-- model staging/stg_subscribers (view)
begin;
create view "analytics"."stg_subscribers__dbt_tmp"
  
  as (
    select
    id as subscriber_id,
    lower(email) as email,
    phone_number,
    shopify_customer_id,
    tags,
    promotional_can_send,
    transactional_can_send,
    (properties ->> 'has_purchased')::boolean as has_purchased,
    created_at,
    updated_at
from "ps"."subscribers"
  );
alter table "analytics"."stg_subscribers__dbt_tmp" rename to "stg_subscribers";
commit;

-- model marts/subscriber_activity (incremental; the table does not exist yet)
begin;
create  table "analytics"."subscriber_activity"
  
  
    as
  
  (
    select
    subscriber_id,
    email,
    phone_number,
    promotional_can_send,
    coalesce(has_purchased, false) as has_purchased,
    cardinality(tags) as tag_count,
    (date_trunc('month', created_at at time zone 'UTC'))::date as cohort_month,
    created_at,
    updated_at
from "analytics"."stg_subscribers"
  );
commit;

-- dbt run #2 ---------------------------------------------------------------

create schema if not exists "analytics";

-- model staging/stg_subscribers (view; the existing one is replaced)
begin;
create view "analytics"."stg_subscribers__dbt_tmp"
  
  as (
    select
    id as subscriber_id,
    lower(email) as email,
    phone_number,
    shopify_customer_id,
    tags,
    promotional_can_send,
    transactional_can_send,
    (properties ->> 'has_purchased')::boolean as has_purchased,
    created_at,
    updated_at
from "ps"."subscribers"
  );
alter table "analytics"."stg_subscribers" rename to "stg_subscribers__dbt_backup";
alter table "analytics"."stg_subscribers__dbt_tmp" rename to "stg_subscribers";
commit;
drop view if exists "analytics"."stg_subscribers__dbt_backup" cascade;

-- model marts/subscriber_activity (incremental; is_incremental() is true):
-- the new rows into a temporary table, asked from the API with
-- updated_at__gt = the newest updated_at already in the table
begin;
create temporary table "subscriber_activity__dbt_tmp120000000000"
  
  
    as
  
  (
    select
    subscriber_id,
    email,
    phone_number,
    promotional_can_send,
    coalesce(has_purchased, false) as has_purchased,
    cardinality(tags) as tag_count,
    (date_trunc('month', created_at at time zone 'UTC'))::date as cohort_month,
    created_at,
    updated_at
from "analytics"."stg_subscribers"


-- only the subscribers changed since the last run: pushed down to the API
-- as updated_at__gt
where updated_at > (select max(updated_at) from "analytics"."subscriber_activity")
  );

delete from "analytics"."subscriber_activity"
    where (
        subscriber_id) in (
        select (subscriber_id)
        from "subscriber_activity__dbt_tmp120000000000"
    );

insert into "analytics"."subscriber_activity" ("subscriber_id", "email", "phone_number", "promotional_can_send", "has_purchased", "tag_count", "cohort_month", "created_at", "updated_at")
    (
        select "subscriber_id", "email", "phone_number", "promotional_can_send", "has_purchased", "tag_count", "cohort_month", "created_at", "updated_at"
        from "subscriber_activity__dbt_tmp120000000000"
    );
commit;

-- what it built (not dbt: a look at the result)
select count(*) as subscribers,
       count(*) filter (where promotional_can_send) as promotable,
       count(*) filter (where has_purchased) as purchased,
       max(updated_at) as newest_change
  from "analytics"."subscriber_activity";

select cohort_month, count(*) as subscribers
  from "analytics"."subscriber_activity"
 group by cohort_month
 order by cohort_month desc
 limit 6;
