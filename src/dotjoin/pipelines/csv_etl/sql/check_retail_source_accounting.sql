-- check: the file's loaded rows + quarantined + duplicates (as stored) equal the records read from it
-- params: dataset, source
SELECT l.output_rows
       + (SELECT count(*) FROM quarantine AS q WHERE q.pipeline = 'csv_etl' AND q.source = $2)
       + (SELECT count(*) FROM csv_etl_duplicates AS d WHERE d.dataset = $1 AND d.source = $2) AS observed,
       l.records AS expected
FROM csv_etl_loads AS l
WHERE l.dataset = $1 AND l.source = $2
