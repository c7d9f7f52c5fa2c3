// The generation kinds of API.md: where each is submitted and its options.

export const KINDS = {
  generate_outline: { route: "/api/ai/generate-outline", section: "outline" },
  generate_characters: { route: "/api/ai/generate-characters", section: "characters", countMax: 50, countDefault: 5 },
  generate_world_settings: { route: "/api/ai/generate-world-settings", section: "world_settings", countMax: 50, countDefault: 5 },
  generate_timeline_events: { route: "/api/ai/generate-timeline-events", section: "timeline_events", countMax: 100, countDefault: 8 },
  generate_foreshadowings: { route: "/api/ai/generate-foreshadowings", section: "foreshadowings", countMax: 50, countDefault: 4 },
  write_chapter_content: { route: "/api/ai/write-chapter-content", section: "chapter" },
  // Batches: followed by batch.js (write_chapters) and the outline's recap slot; a recap
  // touches every section's view of the chapters, so it has no single section.
  write_chapters: { route: "/api/ai/write-chapters", section: "chapter" },
  recap_chapters: { route: "/api/ai/recap-chapters", section: null },
};

export const TASK_TYPES = Object.keys(KINDS);
