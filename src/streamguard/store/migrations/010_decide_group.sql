-- The decision service's consumer group is `streamguard-decide` (it was `streamguard-ledger`
-- before the component took one name). Its stored offsets move with it, so an upgraded service
-- resumes where the old one stopped. The old ownership rows go: the new instances claim their
-- partitions afresh, and an old process still running finds its partitions lost and rolls back.
UPDATE consumer_offsets SET group_id = 'streamguard-decide'
WHERE group_id = 'streamguard-ledger'
  AND NOT EXISTS (SELECT 1 FROM consumer_offsets WHERE group_id = 'streamguard-decide');
DELETE FROM partition_owners WHERE group_id = 'streamguard-ledger';
