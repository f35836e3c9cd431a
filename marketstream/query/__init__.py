"""Reading the tiers back: `hot_queries` asks QuestDB (and checks every input first);
`all_tiers` cuts a range at UTC days and reads each day from the hottest tier holding it."""
