-- Run once by the postgres image's entrypoint, on an empty data volume, as POSTGRES_USER.
-- Airflow keeps its metadata in its own database next to the warehouse (docker-compose.yml).
CREATE DATABASE airflow OWNER healthmate;
