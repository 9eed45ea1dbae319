-- Collections as a tree: a description, and sibling names unique within a
-- parent (case-sensitive: text equality is exact).
ALTER TABLE collections ADD COLUMN description TEXT NOT NULL DEFAULT '';

-- A store from before this migration may hold siblings of the same name: the
-- later ones (by creation) get their id appended, so the index can be built
-- and nothing is lost.
UPDATE collections c SET name = c.name || ' (' || c.id || ')'
WHERE c.parent_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM collections o
    WHERE o.parent_id = c.parent_id AND o.name = c.name
      AND (o.created_at < c.created_at OR (o.created_at = c.created_at AND o.id < c.id))
);

-- Root collections (parent NULL) never collide: NULLs are distinct.
CREATE UNIQUE INDEX collections_sibling_name ON collections(parent_id, name);
