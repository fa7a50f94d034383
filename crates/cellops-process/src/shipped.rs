//! The recipes that ship with cellops (the files in the repository's `recipes/` folder),
//! compiled in so the demo and tests need no file system.

use crate::recipe::model::Recipe;
use crate::recipe::problem::RecipeErrors;

/// File name and text of every shipped recipe.
pub const SHIPPED_RECIPES: &[(&str, &str)] = &[
    (
        "prime-car-t.toml",
        include_str!("../../../recipes/prime-car-t.toml"),
    ),
    (
        "allo-car-t-lot.toml",
        include_str!("../../../recipes/allo-car-t-lot.toml"),
    ),
    ("bm-msc.toml", include_str!("../../../recipes/bm-msc.toml")),
];

/// Parses every shipped recipe. Fails only if a shipped file is invalid, which the
/// `every_shipped_recipe_validates` test rules out.
pub fn shipped_recipes() -> Result<Vec<Recipe>, RecipeErrors> {
    SHIPPED_RECIPES
        .iter()
        .map(|(file, text)| Recipe::parse(file, text))
        .collect()
}
